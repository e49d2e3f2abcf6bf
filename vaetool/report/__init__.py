"""Reporting edge: tables (pandas, every --format), and later figures and images."""
