"""Built-in scenarios shipped with the package (the default 1 GW factory)."""
