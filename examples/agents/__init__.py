"""Example agents: `echo` (the contract, shown) and `machine` (a simulated CNC mill)."""
