"""What people look at: figures without torchvision, widgets (pure render functions + thin shells), source listings."""
