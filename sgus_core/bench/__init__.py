"""Benchmarks that print figures (never timed tests): model throughput against this machine's
float32 peak, Browse page latency at scale, robustness of the models to generator variations."""
