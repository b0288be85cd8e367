"""The job database: schema, connections and SQL views."""
