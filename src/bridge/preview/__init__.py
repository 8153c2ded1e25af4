"""Write-back previews: what bridge would write to a live system, planned from an export by
the real connector against an offline stand-in of the site (``bridge plan``)."""
