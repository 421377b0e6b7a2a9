"""The bus consumer: matches bus messages against the rule index and publishes work items."""
