# %% [markdown]
# # Day 2 · CNNs & Residual Networks
#
# > "The residual connection is the single most important architectural idea in deep learning.
# > Without it, nothing deeper than ~20 layers would train. Transformers, ViTs, VLAs — all use
# > it."
#
# Yesterday you built the gradient engine. Today you'll see why naively stacking layers breaks
# it. CNNs introduced feature hierarchies — the idea that early layers detect edges, middle
# layers detect parts, and deep layers detect objects. But going deeper than ~20 layers caused
# degradation — deeper networks performed worse than shallower ones, even on training data.
#
# ResNets solved this with a shockingly simple idea: skip connections. This one trick enabled
# networks of 100+ layers and became the DNA of every modern architecture. Residuals are
# non-negotiable.
#
# **How this notebook works.** Write your code in place of each `raise NotImplementedError()`
# in the exercise cells, keeping the names and signatures: the grader calls them. Keep your
# code inside those cells (a helper you define in a cell of your own is not part of your
# submission). Run the test cell under an exercise to self-check it with the public tests;
# more cases run when your notebook is graded. Run the cells from the top: later exercises
# use earlier ones (`ResNet18` uses your `BasicBlock`).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false} kit={"fill": "imports"}
# filled by `python -m grader notebook`: the imports of the reference modules

# %% [markdown]
# ## 1. Convolution
#
# A convolution slides a learnable kernel (filter) across the input, computing dot products:
#
# $$\text{output}(i, j) = \sum_{m}\sum_{n} \text{input}(i+m, j+n) \cdot \text{kernel}(m, n)
# + \text{bias}$$
#
# ```
# Input (5×5)        Kernel (3×3)     Output (3×3)
# ┌───────────┐      ┌───────┐        ┌───────┐
# │ 1 0 1 0 1 │      │ 1 0 1 │        │ ? ? ? │
# │ 0 1 0 1 0 │      │ 0 1 0 │  ──▶   │ ? ? ? │
# │ 1 0 1 0 1 │      │ 1 0 1 │        │ ? ? ? │
# │ 0 1 0 1 0 │      └───────┘        └───────┘
# │ 1 0 1 0 1 │
# └───────────┘
# ```
#
# Key properties:
# - **Parameter sharing**: the same kernel at every spatial position → translation
#   equivariance.
# - **Locality**: each output depends only on a local patch → an inductive bias for spatial
#   data.
# - **Depth**: stacking layers grows the receptive field (the area of the input that affects
#   each output).
#
# | Parameter | Effect | Formula |
# |---|---|---|
# | Kernel size $k$ | Local patch size | — |
# | Stride $s$ | Step size | Reduces spatial dims |
# | Padding $p$ | Border handling | Preserves spatial dims if $p = \lfloor k/2 \rfloor$ |
# | Dilation $d$ | Gaps in kernel | Larger receptive field without more params |
#
# Output size:
#
# $$H_{\text{out}} = \left\lfloor \frac{H_{\text{in}} + 2p - d(k - 1) - 1}{s} + 1
# \right\rfloor$$
#
# ### Exercise `conv_output_size` (6 points)
#
# Implement the output-size formula for one spatial axis. Raise `ValueError` on a non-positive
# size, kernel, stride or dilation, a negative padding, or a kernel that does not fit.

# %% nbgrader={"grade": false, "grade_id": "conv-conv_output_size", "locked": false, "solution": true} kit={"fill": ["conv_output_size"]}
# filled from solutions/conv.py

# %% nbgrader={"grade": true, "grade_id": "test_conv_output_size", "locked": true, "points": 6, "solution": false}
from grader.notebook_api import check, self_check

self_check("conv_output_size")
### BEGIN HIDDEN TESTS
check("conv_output_size")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise `conv2d` (12 points)
#
# Now the convolution itself, by hand: same shapes and values as
# `torch.nn.functional.conv2d`, but without calling torch's convolution operators
# (`F.conv2d`, `nn.Conv2d` and their aliases score 0 here). Autograd must still flow through
# it. What does the 5×5 checkerboard above give with the "X" kernel?

# %% nbgrader={"grade": false, "grade_id": "conv-conv2d", "locked": false, "solution": true} kit={"fill": ["IntPair", "_pair", "conv2d"]}
# filled from solutions/conv.py

# %% nbgrader={"grade": true, "grade_id": "test_conv2d", "locked": true, "points": 12, "solution": false}
from grader.notebook_api import check, self_check

self_check("conv2d")
### BEGIN HIDDEN TESTS
check("conv2d")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Receptive fields
#
# CNNs learn a hierarchy of increasingly abstract features:
#
# ```
# Layer 1: Edges, gradients, colors
# Layer 2: Corners, textures, simple shapes
# Layer 3: Parts (eyes, wheels, handles)
# Layer 4: Objects (faces, cars, cups)
# Layer 5: Scenes, contexts, relationships
# ```
#
# This was first visualised by Zeiler & Fergus (2013): each layer learns progressively more
# complex features by composing simpler ones from the layer below. A unit can only compose
# what it sees: its receptive field. For a stack of layers,
#
# $$r_\ell = r_{\ell-1} + (k_\ell - 1) \times \prod_{i=1}^{\ell-1} s_i$$
#
# (with dilation, $k_\ell - 1$ becomes $d_\ell (k_\ell - 1)$).
#
# ### Exercise `receptive_field` (6 points)
#
# Compute the receptive field of a stack of `(kernel, stride)` or `(kernel, stride, dilation)`
# layers, then the theoretical receptive field of ResNet-18 on CIFAR-10 after `conv1` and each
# layer group. Does it cover the entire 32×32 input?

# %% nbgrader={"grade": false, "grade_id": "receptive_field-code", "locked": false, "solution": true} kit={"fill": ["Layer", "receptive_field", "resnet18_receptive_fields"]}
# filled from solutions/receptive_field.py

# %% nbgrader={"grade": true, "grade_id": "test_receptive_field", "locked": true, "points": 6, "solution": false}
from grader.notebook_api import check, self_check

self_check("receptive_field")
### BEGIN HIDDEN TESTS
check("receptive_field")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The parameter table
#
# Count the parameters of ResNet-18 layer by layer. Fill in:
#
# | Component | Shape | Parameters |
# |---|---|---|
# | conv1 | 3→64, 3×3 | ? |
# | layer1 block0 conv1 | 64→64, 3×3 | ? |
# | layer1 block0 conv2 | 64→64, 3×3 | ? |
# | ... | ... | ... |
# | fc | 512→10 | ? |
# | **Total** | | ? |
#
# ### Exercise `param_count` (8 points)
#
# Closed forms for a conv, a BatchNorm and a linear layer; counting a model's parameters (not
# its buffers); the table in `named_parameters()` order; and ResNet-18's total in closed form,
# without building the model.

# %% nbgrader={"grade": false, "grade_id": "param_count-code", "locked": false, "solution": true} kit={"fill": ["KernelSize", "conv2d_params", "batchnorm2d_params", "linear_params", "count_parameters", "parameter_table", "resnet18_param_count"]}
# filled from solutions/param_count.py

# %% nbgrader={"grade": true, "grade_id": "test_param_count", "locked": true, "points": 8, "solution": false}
from grader.notebook_api import check, self_check

self_check("param_count")
### BEGIN HIDDEN TESTS
check("param_count")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The residual block
#
# ### The degradation problem
#
# Before ResNets (2015), practitioners observed a paradox:
#
# | Network depth | Training error | Expected | Actual |
# |---|---|---|---|
# | 20 layers | Low | — | — |
# | 56 layers | Higher | Lower (more capacity) | Higher (degradation!) |
#
# This is not overfitting (training error goes up, not just test error). A 56-layer network
# could represent a 20-layer one by setting the extra layers to identity — but SGD can't find
# that solution.
#
# The gradient of a deep network is a product of many Jacobians:
#
# $$\frac{\partial L}{\partial x_1} = \frac{\partial L}{\partial x_L}
# \prod_{\ell=1}^{L-1} \frac{\partial x_{\ell+1}}{\partial x_\ell}$$
#
# If each factor's spectral norm is < 1, gradients vanish exponentially; > 1, they explode;
# = 1 is perfect, but impossible to maintain through nonlinearities.
#
# ### Residual learning
#
# Instead of learning $H(x)$ directly, learn the residual $F(x) = H(x) - x$:
# $y = F(x) + x$.
#
# ```
# x ──────────────────┐
# │                   │ (skip / shortcut)
# ▼                   │
# Conv 3×3, BN, ReLU  │
# ▼                   │
# Conv 3×3, BN        │
# ▼                   │
# (+) ◀───────────────┘
# ▼
# ReLU → output
# ```
#
# - **Gradient highway**: $\frac{\partial y}{\partial x} = \frac{\partial F(x)}{\partial x} + I$.
#   Even if $\frac{\partial F}{\partial x} \approx 0$, the gradient is at least $I$.
# - **Ensemble of shallow networks** (Veit et al. 2016): expanding
#   $\prod_\ell (I + \partial F_\ell / \partial x_\ell)$ gives $2^L$ paths of different
#   lengths; removing one block barely hurts a ResNet.
# - **Making identity easy**: learning $F(x) \approx 0$ is much easier than learning
#   $H(x) \approx x$ from scratch.
#
# ### Exercise `basic_block` (14 points)
#
# The ResNet basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the shortcut (the identity,
# or a 1×1 conv with the block's stride + BN when the shape changes), add, ReLU.

# %% nbgrader={"grade": false, "grade_id": "blocks-BasicBlock", "locked": false, "solution": true} kit={"fill": ["BasicBlock"]}
# filled from solutions/blocks.py

# %% nbgrader={"grade": true, "grade_id": "test_basic_block", "locked": true, "points": 14, "solution": false}
from grader.notebook_api import check, self_check

self_check("basic_block")
### BEGIN HIDDEN TESTS
check("basic_block")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. ResNet-18 for CIFAR-10
#
# Build a complete ResNet-18 for CIFAR-10 from your `BasicBlock` — no `torchvision.models`.
# CIFAR images are 32×32, so the stem is a 3×3 stride-1 conv with no max-pool; then
# `layer1`…`layer4` of two blocks each with strides 1, 2, 2, 2 and widths 64, 128, 256, 512;
# global average pooling; a 512→10 linear layer. About 11.2M parameters.
#
# ### Exercise `resnet18` (12 points)

# %% nbgrader={"grade": false, "grade_id": "resnet-ResNet18", "locked": false, "solution": true} kit={"fill": ["ResNet18"]}
# filled from solutions/resnet.py

# %% nbgrader={"grade": true, "grade_id": "test_resnet18", "locked": true, "points": 12, "solution": false}
from grader.notebook_api import check, self_check

self_check("resnet18")
### BEGIN HIDDEN TESTS
check("resnet18")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Plain vs residual
#
# `PlainNet` is the same kind of network without skip connections: a stem conv-BN-ReLU, then
# `depth - 2` conv3x3-BN-ReLU layers at width 64, a global pool and a linear layer.
# `ResidualNet` is its twin: the same stem, `(depth - 2) // 2` `BasicBlock(64, 64)`, pool and
# linear layer; the only difference is the identity shortcut around every two convs.
#
# ### Exercise `plain_vs_residual` (8 points)

# %% nbgrader={"grade": false, "grade_id": "resnet-PlainNet", "locked": false, "solution": true} kit={"fill": ["PlainNet", "ResidualNet"]}
# filled from solutions/resnet.py

# %% nbgrader={"grade": true, "grade_id": "test_plain_vs_residual", "locked": true, "points": 8, "solution": false}
from grader.notebook_api import check, self_check

self_check("plain_vs_residual")
### BEGIN HIDDEN TESTS
check("plain_vs_residual")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise `init` (6 points)
#
# `torch.nn.init.kaiming_normal_` is essential for training deep networks: initialise every
# conv Kaiming-normal (`mode="fan_out"`, `nonlinearity="relu"`, so std = √(2 / fan_out)), conv
# biases 0, BatchNorm weight 1 and bias 0; return the model.

# %% nbgrader={"grade": false, "grade_id": "resnet-kaiming_init_", "locked": false, "solution": true} kit={"fill": ["kaiming_init_"]}
# filled from solutions/resnet.py

# %% nbgrader={"grade": true, "grade_id": "test_init", "locked": true, "points": 6, "solution": false}
from grader.notebook_api import check, self_check

self_check("init")
### BEGIN HIDDEN TESTS
check("init")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Gradient norms across depth
#
# Compare the per-layer gradient norms of a 50-layer plain network and a 50-layer ResNet after
# one forward and backward pass.
#
# The usual story is "gradients vanish in deep plain nets". With BatchNorm at PyTorch's default
# initialisation that is not what you will measure: in a 50-layer plain conv-BN-ReLU stack the
# norms *grow* toward the input (first and last conv about $10^3$ apart), because BatchNorm at
# initialisation makes the backward pass explode with depth; without BatchNorm they vanish
# instead. Either way the spread $\log_{10}(\max / \min)$ across layers is huge, and one
# learning rate cannot suit every layer. The residual twin keeps the spread within about one
# order of magnitude.
#
# ### Exercise `grad_norms` (6 points)
#
# `measure_gradient_norms(model, x, y)`: cross-entropy, one backward, the L2 norm of each
# weight tensor's gradient with `dim() >= 2`, in `named_parameters()` order.
# `gradient_norm_spread(norms)`: $\log_{10}(\max / \min)$ of those norms.

# %% nbgrader={"grade": false, "grade_id": "gradients-code", "locked": false, "solution": true} kit={"fill": ["measure_gradient_norms", "gradient_norm_spread"]}
# filled from solutions/gradients.py

# %% nbgrader={"grade": true, "grade_id": "test_grad_norms", "locked": true, "points": 6, "solution": false}
from grader.notebook_api import check, self_check

self_check("grad_norms")
### BEGIN HIDDEN TESTS
check("grad_norms")
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Training on CIFAR-10
#
# The lesson's recipe: SGD with lr 0.1, momentum 0.9 and weight decay 5e-4, a cosine schedule
# over 200 epochs, random crops and flips. On a GPU the full run reaches about 95% test
# accuracy; the whole loop looks like this (not run here):
#
# ```python
# model = ResNet18().to(device)
# optimizer = make_optimizer(model)
# scheduler = make_scheduler(optimizer, epochs=200)
# criterion = nn.CrossEntropyLoss()
# for epoch in range(200):
#     train_loss, train_acc = train_one_epoch(model, train_loader, optimizer, criterion, device)
#     test_loss, test_acc = evaluate(model, test_loader, criterion, device)
#     scheduler.step()
# ```
#
# ### Exercise `training` (10 points)
#
# `make_optimizer`, `make_scheduler`, `train_one_epoch` (train mode; per batch: to device,
# zero the gradients, forward, loss, backward, step; returns the mean batch loss and the
# accuracy in percent) and `evaluate` (eval mode, no gradients).

# %% nbgrader={"grade": false, "grade_id": "train-code", "locked": false, "solution": true} kit={"fill": ["make_optimizer", "make_scheduler", "train_one_epoch", "evaluate"]}
# filled from solutions/train.py

# %% nbgrader={"grade": true, "grade_id": "test_training", "locked": true, "points": 10, "solution": false}
from grader.notebook_api import check, self_check

self_check("training")
### BEGIN HIDDEN TESTS
check("training")
### END HIDDEN TESTS

# %% [markdown]
# ### Smoke test (8 points)
#
# When your notebook is graded, your `ResNet18` is trained for a few steps with your
# `train_one_epoch` on a small fixed batch (on a GPU when there is one, a reduced run on CPU
# otherwise): the loss must fall and the gradient norms must stay in the reference's band.
# There is no public version of this check; the exercises above test its parts.

# %% nbgrader={"grade": true, "grade_id": "test_smoke_test", "locked": true, "points": 8, "solution": false}
from grader.notebook_api import check

# graded when you submit: a short training run of your ResNet18 with your train_one_epoch
### BEGIN HIDDEN TESTS
check("smoke_test")
### END HIDDEN TESTS

# %% [markdown]
# ## 9. First-layer filters
#
# After training, visualise the first-layer convolutional filters (64 filters of shape
# 3×3×3). What patterns do you see? Compare with known Gabor-like edge detectors.
#
# ### Exercise `filters` (4 points)
#
# `filter_grid(weight, nrow=8, padding=1)`: each filter min-max scaled to [0, 1] on its own,
# tiled like `torchvision.utils.make_grid(weight, nrow, padding, normalize=True,
# scale_each=True)`. Show it with `plt.imshow(filter_grid(w).permute(1, 2, 0))`.

# %% nbgrader={"grade": false, "grade_id": "visualize-filter_grid", "locked": false, "solution": true} kit={"fill": ["filter_grid"]}
# filled from solutions/visualize.py

# %% nbgrader={"grade": true, "grade_id": "test_filters", "locked": true, "points": 4, "solution": false}
from grader.notebook_api import check, self_check

self_check("filters")
### BEGIN HIDDEN TESTS
check("filters")
### END HIDDEN TESTS

# %% [markdown]
# ## Key takeaway
#
# Residual connections encode a powerful prior: most of the information should pass through
# unchanged. The network only needs to learn the delta — what to add or subtract. This is a
# form of compression: instead of re-encoding all information at every layer, you only encode
# the new information. It is what differential coding does in signal processing, what
# residual coding does in video compression (P-frames), and what LoRA will do for efficient
# fine-tuning (Day 35): compress the change, not the whole signal.
