"""Who made each change: CloudTrail's calls parsed, recorded, and joined to entries at read time."""
