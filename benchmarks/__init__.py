"""numbanet's asv suite: bench_<family>.py per op family, bench_train.py, shared helpers in common.py."""
