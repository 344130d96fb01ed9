"""Unit tests of the offline stack (local_stack/)."""
