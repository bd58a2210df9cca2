# Keras models of every mapped layer type, with random weights.
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import keras, numpy as np
L = keras.layers

def models():
    return {
        "dense_conv": (keras.Sequential([keras.Input((8, 8, 2)),
            L.Conv2D(3, 3, padding="same", activation="relu"), L.MaxPooling2D(),
            L.Conv2DTranspose(2, 3, strides=2), L.AveragePooling2D(3, strides=2, padding="same"),
            L.Conv2D(4, 2, dilation_rate=2, use_bias=False), L.BatchNormalization(epsilon=0.01),
            L.Flatten(), L.Dense(6, activation="tanh"), L.Dropout(0.2), L.Dense(3),
            L.Activation("softmax")]), (8, 8, 2), "float"),
        "seq": (keras.Sequential([keras.Input((6, 5)),
            L.Conv1D(3, 2, padding="causal", activation="sigmoid"), L.LSTM(4, return_sequences=True),
            L.Bidirectional(L.GRU(2, return_sequences=True)), L.SimpleRNN(3, return_sequences=True),
            L.Dense(2), L.GlobalAveragePooling1D(), L.LeakyReLU(0.1), L.ReLU()]), (6, 5), "float"),
        "embed": (keras.Sequential([keras.Input((7,)), L.Embedding(10, 4),
            L.Bidirectional(L.LSTM(3), merge_mode="sum"), L.Reshape((3, 1)), L.GlobalMaxPooling1D(),
            L.Dense(2, activation="sigmoid")]), (7,), "int"),
        "functional": (None, (5, 5, 1), "float"),
        "graph": (None, (6, 6, 2), "float"),
    }

def functional():
    i = keras.Input((5, 5, 1))
    x = L.Conv2D(2, 2)(i)
    x = L.GlobalMaxPooling2D()(x)
    x = L.BatchNormalization(center=False)(x)
    x = L.Dense(3, activation="leaky_relu")(x)
    x = L.Bidirectional(L.SimpleRNN(2))(L.Reshape((3, 1))(x))
    x = L.Softmax()(x)
    return keras.Model(i, x)

def graph():
    """A graph with a residual block, branches of different lengths holding layers of
    one class (their weight groups are numbered in Keras' layer order), and every merge."""
    i = keras.Input((6, 6, 2))
    stem = L.Conv2D(3, 3, padding="same", activation="relu")(i)
    b = L.Conv2D(3, 3, padding="same")(stem)
    b = L.BatchNormalization()(b)
    b = L.Conv2D(3, 1)(b)
    s = L.Conv2D(3, 1)(stem)
    x = L.Activation("relu")(L.Add()([s, b]))
    x = L.ZeroPadding2D(((1, 0), (2, 1)))(x)
    u = L.UpSampling2D((1, 2))(x)
    x = L.GlobalAveragePooling2D()(L.Concatenate()([u, u]))
    d = L.Dense(4)(x)
    d2 = L.Dense(4)(d)
    d3 = L.Dense(4)(d2)
    sb = L.Subtract()([d3, d])
    mu = L.Multiply()([sb, d2])
    av = L.Average()([mu, d])
    return keras.Model(i, L.Maximum()([av, sb, d3]))

def randomize(m, seed):
    r = np.random.RandomState(seed)
    ws = []
    for v in m.weights:
        a = r.uniform(-0.5, 0.5, v.shape).astype("float32")
        if "moving_variance" in v.path:
            a = a + 1.0
        ws.append(a)
    m.set_weights(ws)

def inputs(shape, kind, seed):
    r = np.random.RandomState(seed)
    if kind == "int":
        return r.randint(0, 10, (4,) + shape).astype("float32")
    return r.randn(*((4,) + shape)).astype("float32")
