"""Unit tests of the model tools (model/tools/)."""
