"""A PyTorch network's weights to and from NumPy, for the fixture scripts (needs torch; not a tfi2i dependency)."""

import torch


def load_numpy(net, state):
    """Sets `net`'s state-dict entries named in `state` (NumPy arrays) and keeps the others."""
    full = net.state_dict()
    for key, value in state.items():
        full[key] = torch.from_numpy(value.copy())
    net.load_state_dict(full)


def numpy_state(net):
    """`net`'s state dict as NumPy copies, without batch norm's ``num_batches_tracked`` counters."""
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
