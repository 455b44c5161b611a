"""Git: a stage's tree (worktree or the repo's), what it may change, and its commit."""
