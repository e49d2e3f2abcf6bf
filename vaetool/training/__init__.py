"""Training: the loop over a session's epochs (loop), the step as the device runs it
(fast_step), K seeds as one stacked model (ensemble), resumable run state (run_state)."""
