"""Checkpoint files: our format (`checkpoint`), atomic writes (`atomic`), safe import of official files
(`unpickler`, `official`), the official converted-file layout (`official_writer`), fine-tuning transfer
(`transfer`) and the file-to-file operations behind `yolov9 convert` / `yolov9 strip` (`convert`)."""
