"""Files that ship with clifs: the trained test model (models/) and the demo media (demo/).

Installed as the resource package ``clifs_assets``; ``clifs.engine.assets`` finds them."""
