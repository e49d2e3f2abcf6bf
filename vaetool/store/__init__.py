"""What vaetool writes and reads back: checkpoints (safetensors + JSON config), sidecars (q*, Q),
posterior and codes files, atomic writes and locks. Nothing here is ever unpickled."""
