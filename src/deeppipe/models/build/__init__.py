"""YAML ``model:`` section -> ``nn.Module``, one job per module.

The builder walks the ``layers:`` list once. For each entry (``entries``) it resolves the layer
(torch.nn, a deeppipe block, a user-registered layer, or a block defined in the spec, whose
``$arg`` templates are bound and substituted by ``templates``), fills the input sizes from the
shape flowing in and constructs the layer on the meta device (``layer``), and runs it once on a
meta tensor to learn its output shape (``probe``): no memory is allocated and no arithmetic done,
so even a ResNet-152 is checked in a fraction of a second. ``wiring`` joins the entries into a
graph (``from:``, ``repeat:``, blocks); ``tagging`` tells each weight layer the activation after
it; ``materialize`` gives the network real storage on the CPU and initialises it (module order, so
a seed gives the same weights every time). ``section`` runs all of it for one model section;
``context`` holds what they share. Every failure is a SpecError naming the YAML path and shapes.
"""
