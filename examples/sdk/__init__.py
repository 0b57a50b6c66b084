"""Agent SDK examples: a simulated OPC UA machine, its agent, and a cell coordinator."""
