"""Every test process computes on one thread: the models here are tiny, and a second thread
only waits. On a machine where other work shares the cores, torch's threads waiting for
each other made one 480-update training test run for over 20 minutes instead of seconds."""
import torch

torch.set_num_threads(1)
