"""Unit tests of training_jobs/."""
