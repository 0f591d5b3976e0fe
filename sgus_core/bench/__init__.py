"""Benchmarks that print figures (never timed tests): model throughput against this machine's
float32 peak (``throughput``), cold start of one prediction (``startup``), Browse page latency at
scale (``browse``), robustness to generator variations (``robustness``) and the
leave-one-family-out generalisation benchmark (``generalisation``)."""
