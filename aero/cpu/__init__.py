"""The x86 CPU: instruction table, decoder, interpreter, system architecture."""
