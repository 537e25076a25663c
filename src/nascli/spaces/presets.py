"""Published cell genotypes, as released by their authors (flat `[op, input]` edge lists).

Sources: DARTS quark0/darts cnn/genotypes.py; SNAS SNAS-Series SNAS/genotypes.py
(`*_edge_all` = the child as SNAS derives it: all 14 edges, `none` = dropped);
PNASNet-5 chenxi116/PNASNet.pytorch genotypes.py; NASNet-A and AmoebaNet-A as
reproduced in the DARTS repository. The spaces turn these into canonical genotypes.
"""

DARTS_FAMILY = {
    "DARTS_V1": {
        "normal": [["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["skip_connect", 0], ["sep_conv_3x3", 1],
                   ["skip_connect", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["skip_connect", 2]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
                   ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["avg_pool_3x3", 0]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "DARTS_V2": {
        "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
                   ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
                   ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "SNAS_mild": {
        "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0], ["dil_conv_3x3", 1],
                   ["skip_connect", 0], ["skip_connect", 1], ["skip_connect", 0], ["sep_conv_3x3", 1]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["max_pool_3x3", 1], ["skip_connect", 2],
                   ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0], ["dil_conv_5x5", 2]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "SNAS_mild_edge_all": {
        "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0], ["dil_conv_3x3", 1],
                   ["none", 2], ["skip_connect", 0], ["skip_connect", 1], ["none", 3], ["none", 2],
                   ["skip_connect", 0], ["sep_conv_3x3", 1], ["none", 4], ["none", 3], ["none", 2]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["none", 0], ["max_pool_3x3", 1],
                   ["skip_connect", 2], ["none", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["none", 3],
                   ["max_pool_3x3", 0], ["dil_conv_5x5", 2], ["none", 1], ["none", 3], ["none", 4]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "SNAS_moderate": {
        "normal": [["dil_conv_5x5", 0], ["skip_connect", 1], ["sep_conv_3x3", 0], ["skip_connect", 1],
                   ["skip_connect", 0], ["skip_connect", 1], ["sep_conv_3x3", 0], ["dil_conv_5x5", 1]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["sep_conv_5x5", 0], ["dil_conv_5x5", 1],
                   ["sep_conv_5x5", 0], ["sep_conv_5x5", 1], ["sep_conv_5x5", 0], ["sep_conv_5x5", 1]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "SNAS_moderate_edge_all": {
        "normal": [["dil_conv_5x5", 0], ["skip_connect", 1], ["sep_conv_3x3", 0], ["skip_connect", 1],
                   ["none", 2], ["skip_connect", 0], ["none", 3], ["none", 2], ["skip_connect", 1],
                   ["sep_conv_3x3", 0], ["dil_conv_5x5", 1], ["none", 4], ["none", 3], ["none", 2]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["sep_conv_5x5", 0], ["none", 2],
                   ["dil_conv_5x5", 1], ["none", 3], ["none", 2], ["sep_conv_5x5", 0], ["sep_conv_5x5", 1],
                   ["none", 4], ["none", 3], ["none", 2], ["sep_conv_5x5", 0], ["sep_conv_5x5", 1]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "SNAS_aggressive": {
        "normal": [["sep_conv_5x5", 0], ["skip_connect", 1], ["skip_connect", 0], ["skip_connect", 1],
                   ["dil_conv_5x5", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_5x5", 1]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["sep_conv_5x5", 0], ["none", 1], ["sep_conv_5x5", 0], ["none", 1],
                   ["none", 1], ["none", 0], ["none", 1], ["none", 0]],
        "reduce_concat": [2, 3, 4, 5],
    },
    "SNAS_aggressive_edge_all": {
        "normal": [["sep_conv_5x5", 0], ["skip_connect", 1], ["skip_connect", 0], ["skip_connect", 1],
                   ["none", 2], ["dil_conv_5x5", 1], ["skip_connect", 0], ["none", 2], ["none", 3],
                   ["skip_connect", 0], ["dil_conv_5x5", 1], ["none", 2], ["none", 3], ["none", 4]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["sep_conv_5x5", 0], ["none", 1], ["sep_conv_5x5", 0], ["none", 1], ["none", 2],
                   ["none", 0], ["none", 1], ["none", 2], ["none", 3], ["none", 0], ["none", 1],
                   ["none", 2], ["none", 3], ["none", 4]],
        "reduce_concat": [2, 3, 4, 5],
    },
}

PNAS_FAMILY = {
    "PNASNet": {
        "normal": [["sep_conv_5x5", 0], ["max_pool_3x3", 0], ["sep_conv_7x7", 1], ["max_pool_3x3", 1],
                   ["sep_conv_5x5", 1], ["sep_conv_3x3", 1], ["sep_conv_3x3", 4], ["max_pool_3x3", 1],
                   ["sep_conv_3x3", 0], ["skip_connect", 1]],
        "normal_concat": [2, 3, 4, 5, 6],
    },
    "NASNet": {
        "normal": [["sep_conv_5x5", 1], ["sep_conv_3x3", 0], ["sep_conv_5x5", 0], ["sep_conv_3x3", 0],
                   ["avg_pool_3x3", 1], ["skip_connect", 0], ["avg_pool_3x3", 0], ["avg_pool_3x3", 0],
                   ["sep_conv_3x3", 1], ["skip_connect", 1]],
        "normal_concat": [2, 3, 4, 5, 6],
        "reduce": [["sep_conv_5x5", 1], ["sep_conv_7x7", 0], ["max_pool_3x3", 1], ["sep_conv_7x7", 0],
                   ["avg_pool_3x3", 1], ["sep_conv_5x5", 0], ["skip_connect", 3], ["avg_pool_3x3", 2],
                   ["sep_conv_3x3", 2], ["max_pool_3x3", 1]],
        "reduce_concat": [4, 5, 6],
    },
    "AmoebaNet": {
        "normal": [["avg_pool_3x3", 0], ["max_pool_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_5x5", 2],
                   ["sep_conv_3x3", 0], ["avg_pool_3x3", 3], ["sep_conv_3x3", 1], ["skip_connect", 1],
                   ["skip_connect", 0], ["avg_pool_3x3", 1]],
        "normal_concat": [4, 5, 6],
        "reduce": [["avg_pool_3x3", 0], ["sep_conv_3x3", 1], ["max_pool_3x3", 0], ["sep_conv_7x7", 2],
                   ["sep_conv_7x7", 0], ["avg_pool_3x3", 1], ["max_pool_3x3", 0], ["max_pool_3x3", 1],
                   ["conv_7x1_1x7", 0], ["sep_conv_3x3", 5]],
        "reduce_concat": [3, 4, 6],
    },
}

# NAS-Bench-201 reference cells (arch strings): the best cell on CIFAR-10 (94.37% after
# 200 epochs), NB201's ResNet cell, and the all-skip cell DARTS collapses to (54.30%).
NB201_FAMILY = {
    "best_cifar10": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    "all_skip": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "all_conv3x3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
}
