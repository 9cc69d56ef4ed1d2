"""``paramsched.megatron`` is `paramsched.formats.megatron`, under the name it has always had."""

import sys

from .formats import megatron

sys.modules[__name__] = megatron
