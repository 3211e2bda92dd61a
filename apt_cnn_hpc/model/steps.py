"""One data-parallel training step for every network of the project: gradients computed under
XLA, averaged over the ranks with Horovod's grouped_allreduce when there are several, applied by
the optimizer. Every rank must call the step the same number of times."""


def data_parallel_step(model, optimizer, loss_of, size: int):
    """step(x, y) -> loss, with loss_of(y, prediction) the scalar loss of a batch."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def grads(x, y):
        with tf.GradientTape() as tape:
            loss = loss_of(y, model(x, training=True))
        return loss, tape.gradient(loss, model.trainable_variables)

    @tf.function
    def step(x, y):
        loss, g = grads(x, y)
        if size > 1:
            import horovod.tensorflow as hvd
            g = hvd.grouped_allreduce(g, op=hvd.Average)
        optimizer.apply_gradients(zip(g, model.trainable_variables))
        return loss

    return step
