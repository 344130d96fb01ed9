"""Unit tests of model serving (model/serving/)."""
