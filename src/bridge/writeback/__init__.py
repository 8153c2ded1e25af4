"""Write-back: what to write onto an item (pure planning) and how the summary reads."""
