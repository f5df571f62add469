"""One operator per module; each defines CLASSES."""
