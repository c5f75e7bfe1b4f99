"""DevBizOps (seed 002): engineering data beside business data, DORA and flow metrics."""
