"""The PyTorch port. Importing this package first makes torch's OpenMP threads (its operators'
thread pool and its MKL) sleep as soon as a parallel region ends, instead of spinning a few
milliseconds for the next one: with other work on the same cores (another run, the ranks of a
one-machine DDP run, test workers) spinning threads take the cores their siblings wait for.
OpenMP reads the policy once, when torch loads it, so every module of the port imports torch only
after this package has run; an ``OMP_WAIT_POLICY`` the user set is kept (``ACTIVE`` to spin)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
