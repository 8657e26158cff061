"""Plain ``nn.Module`` generators and discriminators; every size is a constructor argument."""
