"""The run machinery: train into a run folder, checkpoint and resume it, load it, measure it.

`fit` (training), `checkpoint` (safetensors files with digests), `folder` (locks, logs, output
paths), `loading` (a run folder, an export folder or a weights file as a model), `evaluation`
(every metric on a run folder), `schedule` (the learning rate as a function of the step),
`feedback` (progress lines), `device` and `allocator` (where and how a process computes).
"""
