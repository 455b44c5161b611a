"""Ways an agent could get past the gate, each tried against serial stages and parallel lanes.

One module per way (self-approval, a worker's own commit, the user's changes,
rewritten books, an inconsistent verdict, scope, an agent outliving its
supervision, ...). ``bench/faults.py`` reports them as the "trust" category.
"""
