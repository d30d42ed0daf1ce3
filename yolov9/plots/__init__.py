"""Pictures: annotated images (drawing), training figures (training), validation curves (curves), all written
atomically; matplotlib is imported only when a figure is drawn (figures)."""
