"""The PyTorch port. It leaves torch's OpenMP wait policy to the user: by default its threads spin
a few milliseconds after each parallel region for the next one, which is what makes a fit fast on
cores of its own (faster than ``OMP_WAIT_POLICY=PASSIVE`` for the one-epoch fit: the figures in
docs/performance.md, "Time to accuracy"); where other work shares the cores (the ranks of a one-machine DDP
run, several runs), ``OMP_WAIT_POLICY=PASSIVE`` set before the command keeps spinning threads off
the cores their siblings wait for. (``cnn.mx`` sets PASSIVE for the MKL it borrows from torch:
MLX calls it from threads of its own.)"""
