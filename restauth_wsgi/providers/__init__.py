"""Identity providers: their settings, presets, discovery, keys and lookups."""
