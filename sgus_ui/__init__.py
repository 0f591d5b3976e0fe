"""What the pages share: cached handles (settings, store), the sidebar and image widgets."""
