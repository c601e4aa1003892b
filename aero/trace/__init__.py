"""Time travel: exact record and replay, reverse execution, trace files, queries and exports."""
