"""Search spaces: one module per space, all behind `get_space(name)`."""

from nascli.spaces.base import SPACES, DataShape, SearchSpace, get_space, load_space_plugins, register_space

__all__ = ["SPACES", "DataShape", "SearchSpace", "get_space", "load_space_plugins", "register_space"]
