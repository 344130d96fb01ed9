"""Behavioural tests of trained models."""
