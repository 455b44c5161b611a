"""Tests of autometta's top-level modules: autometta/<mod>.py in test_<mod>[_<aspect>].py."""
