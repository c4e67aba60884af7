"""skscale."""
