"""The runtime: the scheduler, the writer, checkpoints, and the glue to torch and
torch.distributed."""
