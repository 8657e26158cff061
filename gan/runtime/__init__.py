"""The run plumbing: building from config and checking its keys, the one-line errors, checkpoints and
run folders, files, RNG state, memory, names, the console, precision, the budget, the scalars' bookkeeping
and one network's update."""
