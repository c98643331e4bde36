"""Built-in protocol plugins (each a pluggy plugin of the donjon hooks)."""
