"""Tests of autometta/families/: each family, its usage parser, a fourth family."""
