"""`python -m gantransfer` is the `gtx` app (used by torchrun for distributed training)."""

from gantransfer.cli import main

if __name__ == "__main__":
    main()
