import torch

# Tiny models: one thread avoids OpenMP hand-offs that dominate small ops on a shared 2-core machine.
torch.set_num_threads(1)
