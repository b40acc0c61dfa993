"""Writes the pix2pixHD reference-equivalence fixture (tests/reference/pix2pixhd_small.npz) with PyTorch.

Needs ``torch`` and ``numpy`` only (not tfi2i, not TensorFlow, not torchvision)::

    /work/torchvenv/bin/python tests/reference/make_pix2pixhd_fixtures.py

The networks, losses and training order below are NVIDIA/pix2pixHD's, commit
14b3b3c (BSD licence, notice below), copied from:

* models/networks.py: ``GlobalGenerator``, ``LocalEnhancer``, ``ResnetBlock``,
  ``Encoder``, ``MultiscaleDiscriminator``, ``NLayerDiscriminator``,
  ``GANLoss``, ``VGGLoss``, ``Vgg19``, ``get_norm_layer`` (only changes: the
  ``Tensor`` factory of ``GANLoss`` follows the prediction's dtype so that the
  float64 run works; ``VGGLoss`` / ``Vgg19`` take a VGG-19 ``features``
  ``nn.Sequential`` rebuilt here in torchvision's layout, randomly initialised,
  instead of downloading ``torchvision.models.vgg19(pretrained=True)``);
* models/pix2pixHD_model.py: ``Pix2PixHDModel.forward`` (``pool_size 0``: the
  fake pool returns its input; no instance features), ``get_edges``,
  ``encode_input``'s one-hot ``scatter_``;
* train.py: ``loss_D = (D_fake + D_real) * 0.5``, ``loss_G = G_GAN + G_GAN_Feat
  + G_VGG``; one forward, then ``optimizer_G.zero_grad(); loss_G.backward();
  optimizer_G.step()``, then ``optimizer_D.zero_grad(); loss_D.backward();
  optimizer_D.step()``; Adam lr 2e-4, betas (0.5, 0.999).

Setting: label_nc 5 + the instance edge map (6 input channels), output_nc 3,
32 x 64 (H x W) inputs, batch 1, instance norm (NVIDIA's default). Global
generator: ngf 8, n_downsample_global 2, n_blocks_global 2. Local enhancer:
ngf 4 (its global part 8), n_local_enhancers 1, n_blocks_local 1. D: ndf 8,
n_layers_D 3, num_D 2, getIntermFeat (the feature-matching loss is on),
lsgan. Encoder (forward only): nef 4, n_downsample_E 2, feat_num 3.
lambda_feat 10. Two runs of 3 training steps ("global/", "local/"), each with
a fresh copy of the same initial D, on three different batches.

Initial weights (``weights_init``: conv kernels N(0, 0.02); the biases keep
PyTorch's default U(+-1/sqrt(fan_in))) are drawn by
`fixture_format.initial_state` from seeded NumPy and not stored (they would
not fit in a small file): both sides regenerate them bit for bit from the key
list, shapes, kinds and seed the fixture records. The VGG-19 (13 convs up to
relu5_1) the same way (kaiming fan_out kernels, torch-default biases). Large
tensors are stored as `fixture_format.sample` s of ``CAP`` values.

Everything is float32 on CPU; the 3 training steps are also run in float64
(``after64/``; ``gap/`` = per-tensor max |float32 - float64| of the
reference itself; ``gradgap/``, ``lossgap_*``, ``gap_fake_after``), which
justifies the tolerances of the comparisons.

----------------------------------------------------------------------------
The copied class definitions carry this notice (NVIDIA/pix2pixHD LICENSE.txt):

Copyright (C) 2019 NVIDIA Corporation. Ting-Chun Wang, Ming-Yu Liu, Jun-Yan Zhu.
BSD License. All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

* Redistributions of source code must retain the above copyright notice, this
  list of conditions and the following disclaimer.

* Redistributions in binary form must reproduce the above copyright notice,
  this list of conditions and the following disclaimer in the documentation
  and/or other materials provided with the distribution.

THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE, INCLUDING ALL
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR ANY PARTICULAR PURPOSE.
IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, INDIRECT OR CONSEQUENTIAL
DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS,
WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING
OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
----------------------------------------------------------------------------
"""

import copy
import functools
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.autograd import Variable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_format import initial_state, sample  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LABEL_NC, OUTPUT_NC = 5, 3
INPUT_NC = LABEL_NC + 1  # + the instance edge map
H, W = 32, 64
BATCH, STEPS = 1, 3
NGF, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL = 8, 2, 2
NGF_LOCAL, N_LOCAL_ENHANCERS, N_BLOCKS_LOCAL = 4, 1, 1
NDF, N_LAYERS_D, NUM_D = 8, 3, 2
NEF, N_DOWNSAMPLE_E, FEAT_NUM = 4, 2, 3
LR, BETA1, BETA2 = 2e-4, 0.5, 0.999
LAMBDA_FEAT = 10.0
SEED = 20
SEEDS = {"global": SEED, "local": SEED + 1, "D": SEED + 2, "vgg": SEED + 3, "E": SEED + 4}
CAP = 256  # values per stored large tensor (fixture_format.sample)
VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)  # features[i] that are convs, up to relu5_1 (29)


# ============================================================================ NVIDIA/pix2pixHD models/networks.py
# (commit 14b3b3c; BSD licence, see the module docstring)
def get_norm_layer(norm_type='instance'):
    if norm_type == 'batch':
        norm_layer = functools.partial(nn.BatchNorm2d, affine=True)
    elif norm_type == 'instance':
        norm_layer = functools.partial(nn.InstanceNorm2d, affine=False)
    else:
        raise NotImplementedError('normalization layer [%s] is not found' % norm_type)
    return norm_layer


class GANLoss(nn.Module):
    def __init__(self, use_lsgan=True, target_real_label=1.0, target_fake_label=0.0,
                 tensor=torch.FloatTensor):
        super(GANLoss, self).__init__()
        self.real_label = target_real_label
        self.fake_label = target_fake_label
        self.real_label_var = None
        self.fake_label_var = None
        self.Tensor = tensor
        if use_lsgan:
            self.loss = nn.MSELoss()
        else:
            self.loss = nn.BCELoss()

    def get_target_tensor(self, input, target_is_real):
        target_tensor = None
        if target_is_real:
            create_label = ((self.real_label_var is None) or
                            (self.real_label_var.numel() != input.numel()))
            if create_label:
                real_tensor = self.Tensor(input.size()).fill_(self.real_label)
                self.real_label_var = Variable(real_tensor, requires_grad=False)
            target_tensor = self.real_label_var
        else:
            create_label = ((self.fake_label_var is None) or
                            (self.fake_label_var.numel() != input.numel()))
            if create_label:
                fake_tensor = self.Tensor(input.size()).fill_(self.fake_label)
                self.fake_label_var = Variable(fake_tensor, requires_grad=False)
            target_tensor = self.fake_label_var
        return target_tensor

    def __call__(self, input, target_is_real):
        if isinstance(input[0], list):
            loss = 0
            for input_i in input:
                pred = input_i[-1]
                target_tensor = self.get_target_tensor(pred, target_is_real)
                loss += self.loss(pred, target_tensor)
            return loss
        else:
            target_tensor = self.get_target_tensor(input[-1], target_is_real)
            return self.loss(input[-1], target_tensor)


class VGGLoss(nn.Module):
    def __init__(self, vgg):  # NVIDIA: __init__(self, gpu_ids) with self.vgg = Vgg19().cuda()
        super(VGGLoss, self).__init__()
        self.vgg = vgg
        self.criterion = nn.L1Loss()
        self.weights = [1.0/32, 1.0/16, 1.0/8, 1.0/4, 1.0]

    def forward(self, x, y):
        x_vgg, y_vgg = self.vgg(x), self.vgg(y)
        loss = 0
        for i in range(len(x_vgg)):
            loss += self.weights[i] * self.criterion(x_vgg[i], y_vgg[i].detach())
        return loss


class LocalEnhancer(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=32, n_downsample_global=3, n_blocks_global=9,
                 n_local_enhancers=1, n_blocks_local=3, norm_layer=nn.BatchNorm2d, padding_type='reflect'):
        super(LocalEnhancer, self).__init__()
        self.n_local_enhancers = n_local_enhancers

        ###### global generator model #####
        ngf_global = ngf * (2**n_local_enhancers)
        model_global = GlobalGenerator(input_nc, output_nc, ngf_global, n_downsample_global, n_blocks_global, norm_layer).model
        model_global = [model_global[i] for i in range(len(model_global)-3)] # get rid of final convolution layers
        self.model = nn.Sequential(*model_global)

        ###### local enhancer layers #####
        for n in range(1, n_local_enhancers+1):
            ### downsample
            ngf_global = ngf * (2**(n_local_enhancers-n))
            model_downsample = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf_global, kernel_size=7, padding=0),
                                norm_layer(ngf_global), nn.ReLU(True),
                                nn.Conv2d(ngf_global, ngf_global * 2, kernel_size=3, stride=2, padding=1),
                                norm_layer(ngf_global * 2), nn.ReLU(True)]
            ### residual blocks
            model_upsample = []
            for i in range(n_blocks_local):
                model_upsample += [ResnetBlock(ngf_global * 2, padding_type=padding_type, norm_layer=norm_layer)]

            ### upsample
            model_upsample += [nn.ConvTranspose2d(ngf_global * 2, ngf_global, kernel_size=3, stride=2, padding=1, output_padding=1),
                               norm_layer(ngf_global), nn.ReLU(True)]

            ### final convolution
            if n == n_local_enhancers:
                model_upsample += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]

            setattr(self, 'model'+str(n)+'_1', nn.Sequential(*model_downsample))
            setattr(self, 'model'+str(n)+'_2', nn.Sequential(*model_upsample))

        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def forward(self, input):
        ### create input pyramid
        input_downsampled = [input]
        for i in range(self.n_local_enhancers):
            input_downsampled.append(self.downsample(input_downsampled[-1]))

        ### output at coarest level
        output_prev = self.model(input_downsampled[-1])
        ### build up one layer at a time
        for n_local_enhancers in range(1, self.n_local_enhancers+1):
            model_downsample = getattr(self, 'model'+str(n_local_enhancers)+'_1')
            model_upsample = getattr(self, 'model'+str(n_local_enhancers)+'_2')
            input_i = input_downsampled[self.n_local_enhancers-n_local_enhancers]
            output_prev = model_upsample(model_downsample(input_i) + output_prev)
        return output_prev


class GlobalGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, n_downsampling=3, n_blocks=9, norm_layer=nn.BatchNorm2d,
                 padding_type='reflect'):
        assert(n_blocks >= 0)
        super(GlobalGenerator, self).__init__()
        activation = nn.ReLU(True)

        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0), norm_layer(ngf), activation]
        ### downsample
        for i in range(n_downsampling):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1),
                      norm_layer(ngf * mult * 2), activation]

        ### resnet blocks
        mult = 2**n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult, padding_type=padding_type, activation=activation, norm_layer=norm_layer)]

        ### upsample
        for i in range(n_downsampling):
            mult = 2**(n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1, output_padding=1),
                       norm_layer(int(ngf * mult / 2)), activation]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, activation=nn.ReLU(True), use_dropout=False):
        super(ResnetBlock, self).__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, activation, use_dropout)

    def build_conv_block(self, dim, padding_type, norm_layer, activation, use_dropout):
        conv_block = []
        p = 0
        if padding_type == 'reflect':
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == 'replicate':
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == 'zero':
            p = 1
        else:
            raise NotImplementedError('padding [%s] is not implemented' % padding_type)

        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p),
                       norm_layer(dim),
                       activation]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]

        p = 0
        if padding_type == 'reflect':
            conv_block += [nn.ReflectionPad2d(1)]
        elif padding_type == 'replicate':
            conv_block += [nn.ReplicationPad2d(1)]
        elif padding_type == 'zero':
            p = 1
        else:
            raise NotImplementedError('padding [%s] is not implemented' % padding_type)
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p),
                       norm_layer(dim)]

        return nn.Sequential(*conv_block)

    def forward(self, x):
        out = x + self.conv_block(x)
        return out


class Encoder(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=32, n_downsampling=4, norm_layer=nn.BatchNorm2d):
        super(Encoder, self).__init__()
        self.output_nc = output_nc

        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0),
                 norm_layer(ngf), nn.ReLU(True)]
        ### downsample
        for i in range(n_downsampling):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]

        ### upsample
        for i in range(n_downsampling):
            mult = 2**(n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1, output_padding=1),
                       norm_layer(int(ngf * mult / 2)), nn.ReLU(True)]

        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input, inst):
        outputs = self.model(input)

        # instance-wise average pooling
        outputs_mean = outputs.clone()
        inst_list = np.unique(inst.cpu().numpy().astype(int))
        for i in inst_list:
            for b in range(input.size()[0]):
                indices = (inst[b:b+1] == int(i)).nonzero() # n x 4
                for j in range(self.output_nc):
                    output_ins = outputs[indices[:,0] + b, indices[:,1] + j, indices[:,2], indices[:,3]]
                    mean_feat = torch.mean(output_ins).expand_as(output_ins)
                    outputs_mean[indices[:,0] + b, indices[:,1] + j, indices[:,2], indices[:,3]] = mean_feat
        return outputs_mean


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d,
                 use_sigmoid=False, num_D=3, getIntermFeat=False):
        super(MultiscaleDiscriminator, self).__init__()
        self.num_D = num_D
        self.n_layers = n_layers
        self.getIntermFeat = getIntermFeat

        for i in range(num_D):
            netD = NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer, use_sigmoid, getIntermFeat)
            if getIntermFeat:
                for j in range(n_layers+2):
                    setattr(self, 'scale'+str(i)+'_layer'+str(j), getattr(netD, 'model'+str(j)))
            else:
                setattr(self, 'layer'+str(i), netD.model)

        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def singleD_forward(self, model, input):
        if self.getIntermFeat:
            result = [input]
            for i in range(len(model)):
                result.append(model[i](result[-1]))
            return result[1:]
        else:
            return [model(input)]

    def forward(self, input):
        num_D = self.num_D
        result = []
        input_downsampled = input
        for i in range(num_D):
            if self.getIntermFeat:
                model = [getattr(self, 'scale'+str(num_D-1-i)+'_layer'+str(j)) for j in range(self.n_layers+2)]
            else:
                model = getattr(self, 'layer'+str(num_D-1-i))
            result.append(self.singleD_forward(model, input_downsampled))
            if i != (num_D-1):
                input_downsampled = self.downsample(input_downsampled)
        return result


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d, use_sigmoid=False, getIntermFeat=False):
        super(NLayerDiscriminator, self).__init__()
        self.getIntermFeat = getIntermFeat
        self.n_layers = n_layers

        kw = 4
        padw = int(np.ceil((kw-1.0)/2))
        sequence = [[nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]]

        nf = ndf
        for n in range(1, n_layers):
            nf_prev = nf
            nf = min(nf * 2, 512)
            sequence += [[
                nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=2, padding=padw),
                norm_layer(nf), nn.LeakyReLU(0.2, True)
            ]]

        nf_prev = nf
        nf = min(nf * 2, 512)
        sequence += [[
            nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=1, padding=padw),
            norm_layer(nf),
            nn.LeakyReLU(0.2, True)
        ]]

        sequence += [[nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)]]

        if use_sigmoid:
            sequence += [[nn.Sigmoid()]]

        if getIntermFeat:
            for n in range(len(sequence)):
                setattr(self, 'model'+str(n), nn.Sequential(*sequence[n]))
        else:
            sequence_stream = []
            for n in range(len(sequence)):
                sequence_stream += sequence[n]
            self.model = nn.Sequential(*sequence_stream)

    def forward(self, input):
        if self.getIntermFeat:
            res = [input]
            for n in range(self.n_layers+2):
                model = getattr(self, 'model'+str(n))
                res.append(model(res[-1]))
            return res[1:]
        else:
            return self.model(input)


class Vgg19(torch.nn.Module):
    def __init__(self, vgg_pretrained_features, requires_grad=False):
        # NVIDIA: vgg_pretrained_features = models.vgg19(pretrained=True).features; here passed in (vgg19_features)
        super(Vgg19, self).__init__()
        self.slice1 = torch.nn.Sequential()
        self.slice2 = torch.nn.Sequential()
        self.slice3 = torch.nn.Sequential()
        self.slice4 = torch.nn.Sequential()
        self.slice5 = torch.nn.Sequential()
        for x in range(2):
            self.slice1.add_module(str(x), vgg_pretrained_features[x])
        for x in range(2, 7):
            self.slice2.add_module(str(x), vgg_pretrained_features[x])
        for x in range(7, 12):
            self.slice3.add_module(str(x), vgg_pretrained_features[x])
        for x in range(12, 21):
            self.slice4.add_module(str(x), vgg_pretrained_features[x])
        for x in range(21, 30):
            self.slice5.add_module(str(x), vgg_pretrained_features[x])
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, X):
        h_relu1 = self.slice1(X)
        h_relu2 = self.slice2(h_relu1)
        h_relu3 = self.slice3(h_relu2)
        h_relu4 = self.slice4(h_relu3)
        h_relu5 = self.slice5(h_relu4)
        out = [h_relu1, h_relu2, h_relu3, h_relu4, h_relu5]
        return out
# ============================================================================ end of the copied definitions


def vgg19_features():
    """torchvision's ``vgg19().features`` (config "E") as a plain ``nn.Sequential``: same indices, same layers."""
    layers, in_c = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_c = v
    features = nn.Sequential(*layers)
    assert len(features) == 37 and all(isinstance(features[i], nn.Conv2d) for i in VGG_CONVS)
    return features


# ---------------------------------------------------------------------------- pix2pixHD_model.py / train.py
def get_edges(t):
    """``Pix2PixHDModel.get_edges`` (on CPU: ``torch.ByteTensor`` for ``torch.cuda.ByteTensor``)."""
    edge = torch.ByteTensor(t.size()).zero_()
    edge[:,:,:,1:] = edge[:,:,:,1:] | (t[:,:,:,1:] != t[:,:,:,:-1])
    edge[:,:,:,:-1] = edge[:,:,:,:-1] | (t[:,:,:,1:] != t[:,:,:,:-1])
    edge[:,:,1:,:] = edge[:,:,1:,:] | (t[:,:,1:,:] != t[:,:,:-1,:])
    edge[:,:,:-1,:] = edge[:,:,:-1,:] | (t[:,:,1:,:] != t[:,:,:-1,:])
    return edge.float()


def encode_input(label_map, inst_map):
    """``Pix2PixHDModel.encode_input``: one-hot labels (``scatter_``) concatenated with the edge map."""
    size = label_map.size()
    input_label = torch.FloatTensor(torch.Size((size[0], LABEL_NC, size[2], size[3]))).zero_()
    input_label = input_label.scatter_(1, label_map.data.long(), 1.0)
    return torch.cat((input_label, get_edges(inst_map)), dim=1)


class Reference:
    """The loss part of ``Pix2PixHDModel`` (``forward`` with pool_size 0, no features) for one dtype."""

    def __init__(self, G, D, vgg, dtype):
        self.G, self.D = G, D
        self.criterionGAN = GANLoss(use_lsgan=True, tensor=lambda size: torch.empty(size, dtype=dtype))
        self.criterionFeat = torch.nn.L1Loss()
        self.criterionVGG = VGGLoss(vgg)

    def discriminate(self, input_label, test_image):
        return self.D.forward(torch.cat((input_label, test_image.detach()), dim=1))

    def forward(self, input_label, real_image):
        fake_image = self.G.forward(input_label)
        pred_fake_pool = self.discriminate(input_label, fake_image)  # fake_pool.query: identity (pool_size 0)
        loss_D_fake = self.criterionGAN(pred_fake_pool, False)
        pred_real = self.discriminate(input_label, real_image)
        loss_D_real = self.criterionGAN(pred_real, True)
        pred_fake = self.D.forward(torch.cat((input_label, fake_image), dim=1))
        loss_G_GAN = self.criterionGAN(pred_fake, True)
        loss_G_GAN_Feat = 0
        feat_weights = 4.0 / (N_LAYERS_D + 1)
        D_weights = 1.0 / NUM_D
        for i in range(NUM_D):
            for j in range(len(pred_fake[i])-1):
                loss_G_GAN_Feat += D_weights * feat_weights * \
                    self.criterionFeat(pred_fake[i][j], pred_real[i][j].detach()) * LAMBDA_FEAT
        loss_G_VGG = self.criterionVGG(fake_image, real_image) * LAMBDA_FEAT
        losses = {"G_GAN": loss_G_GAN, "G_GAN_Feat": loss_G_GAN_Feat, "G_VGG": loss_G_VGG, "D_real": loss_D_real,
                  "D_fake": loss_D_fake}
        return losses, fake_image, pred_fake, pred_real


def train(G, D, vgg, batches, dtype):
    """train.py's loop over `batches` (one step each); per-step records, step 1 with gradients and outputs."""
    ref = Reference(G, D, vgg, dtype)
    optimizer_G = torch.optim.Adam(G.parameters(), lr=LR, betas=(BETA1, BETA2))
    optimizer_D = torch.optim.Adam(D.parameters(), lr=LR, betas=(BETA1, BETA2))
    records = []
    for input_label, real_image in batches:
        losses, fake, pred_fake, pred_real = ref.forward(input_label.to(dtype), real_image.to(dtype))
        loss_D = (losses["D_fake"] + losses["D_real"]) * 0.5
        loss_G = losses["G_GAN"] + losses["G_GAN_Feat"] + losses["G_VGG"]
        optimizer_G.zero_grad()
        loss_G.backward()
        grad_G = {k: p.grad.detach().numpy().copy() for k, p in G.named_parameters()}
        optimizer_G.step()
        optimizer_D.zero_grad()
        loss_D.backward()
        grad_D = {k: p.grad.detach().numpy().copy() for k, p in D.named_parameters()}
        optimizer_D.step()
        rec = {k: v.item() for k, v in losses.items()}
        rec.update(G=loss_G.item(), D=loss_D.item())
        if not records:
            rec.update(grad_G=grad_G, grad_D=grad_D, fake=fake.detach().numpy().copy(),
                       pred_fake=[[t.detach().numpy().copy() for t in scale] for scale in pred_fake],
                       pred_real=[[t.detach().numpy().copy() for t in scale] for scale in pred_real])
        records.append(rec)
    return records


# ---------------------------------------------------------------------------- fixture writing
def kinds_of(net):
    """``(keys, shapes, kinds)`` of a network's state dict: conv kernels N(0, 0.02), biases torch's default."""
    modules = dict(net.named_modules())
    keys, shapes, kinds = [], [], []
    for key, value in net.state_dict().items():
        owner, leaf = key.rsplit(".", 1)
        module = modules[owner]
        if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            raise ValueError(key)
        weight = module.weight
        fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]  # torch: dim 1, for ConvTranspose2d too
        keys.append(key)
        shapes.append(tuple(value.shape))
        kinds.append("conv_weight" if leaf == "weight" else f"torch_bias:{fan_in}")
    return keys, shapes, kinds


def vgg_kinds():
    keys, shapes, kinds = [], [], []
    features = vgg19_features()
    for i in VGG_CONVS:
        w = features[i].weight
        keys += [f"{i}.weight", f"{i}.bias"]
        shapes += [tuple(w.shape), (w.shape[0],)]
        kinds += ["kaiming_fan_out", f"torch_bias:{w.shape[1] * 9}"]
    return keys, shapes, kinds


def load_numpy(net, state):
    full = net.state_dict()
    for key, value in state.items():
        full[key] = torch.from_numpy(value.copy())
    net.load_state_dict(full)


def numpy_state(net):
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def nhwc(t):
    return np.ascontiguousarray(np.asarray(t).transpose(0, 2, 3, 1))


def make_batch(rng):
    """An integer label map (5 classes) and instance map from random rectangles, and a float16-exact image."""
    label = np.zeros((H, W), np.int64)
    inst = np.zeros((H, W), np.int64)
    for k in range(7):
        h, w = rng.integers(6, 20), rng.integers(8, 36)
        top, left = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        cls = int(rng.integers(1, LABEL_NC))
        label[top:top + h, left:left + w] = cls
        inst[top:top + h, left:left + w] = cls * 1000 + k if cls >= 3 else cls  # "things" get instance ids
    image = rng.uniform(-1, 1, (BATCH, OUTPUT_NC, H, W)).astype(np.float16).astype(np.float32)
    return label, inst, image


def nets(kind, dtype=torch.float32):
    norm_layer = get_norm_layer("instance")
    if kind == "global":
        G = GlobalGenerator(INPUT_NC, OUTPUT_NC, NGF, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL, norm_layer)
    else:
        G = LocalEnhancer(INPUT_NC, OUTPUT_NC, NGF_LOCAL, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL, N_LOCAL_ENHANCERS,
                          N_BLOCKS_LOCAL, norm_layer)
    D = MultiscaleDiscriminator(INPUT_NC + OUTPUT_NC, NDF, N_LAYERS_D, norm_layer, use_sigmoid=False, num_D=NUM_D,
                                getIntermFeat=True)
    load_numpy(G, initial_state(*kinds_of(G), SEEDS[kind]))
    load_numpy(D, initial_state(*kinds_of(D), SEEDS["D"]))
    features = vgg19_features()
    load_numpy(features, initial_state(*vgg_kinds(), SEEDS["vgg"]))
    vgg = Vgg19(features)
    return G.to(dtype), D.to(dtype), vgg.to(dtype)


def record_keys(out, prefix, net):
    keys, shapes, kinds = kinds_of(net)
    out[f"{prefix}_keys"] = np.array(keys)
    out[f"{prefix}_shapes"] = np.array([",".join(map(str, s)) for s in shapes])
    out[f"{prefix}_kinds"] = np.array(kinds)


def write_run(out, kind, batches):
    G, D, vgg = nets(kind)
    record_keys(out, f"{kind}/G", G)
    if kind == "global":
        record_keys(out, "D", D)
    records = train(G, D, vgg, batches, torch.float32)
    first = records[0]
    p = f"{kind}/"
    out[p + "fake"] = nhwc(first["fake"])
    for who, preds in (("fake", first["pred_fake"]), ("real", first["pred_real"])):
        for k, scale in enumerate(preds):  # k: NVIDIA's result index (scale{NUM_D-1-k}) = tfi2i's list index
            for j, t in enumerate(scale[:-1]):
                out[f"{p}D{k}/{who}/feat{j}"] = sample(t, CAP)  # NCHW, sampled
                out[f"{p}D{k}/{who}/feat{j}_mean_abs"] = np.array(np.abs(t).mean(), np.float32)
            out[f"{p}D{k}/{who}/logits"] = nhwc(scale[-1])
    for name in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake", "G", "D"):
        out[f"{p}loss_{name}"] = np.array([r[name] for r in records], np.float32)
    for who, grads in (("G", first["grad_G"]), ("D", first["grad_D"])):
        for key, grad in grads.items():
            out[f"{p}grad/{who}/{key}"] = sample(grad, CAP)
            out[f"{p}gradnorm/{who}/{key}"] = np.array(np.linalg.norm(grad), np.float32)

    # the same 3 steps in float64: the exact result, and how far the float32 reference is from it
    G64, D64, vgg64 = nets(kind, torch.float64)
    records64 = train(G64, D64, vgg64, batches, torch.float64)
    for who, grads in (("G", first["grad_G"]), ("D", first["grad_D"])):
        grads64 = records64[0][f"grad_{who}"]
        # relative to each tensor's largest gradient; conv biases before an instance norm (exactly 0 in float64,
        # rounding noise in float32) are left out
        for k, g in grads.items():  # per tensor too (scalars), for the comparison's report
            if np.max(np.abs(grads64[k])) > 1e-10:
                out[f"{p}gradgap/{who}/{k}"] = np.array(np.max(np.abs(g - grads64[k])) / np.max(np.abs(grads64[k])),
                                                        np.float32)
        out[f"{p}gradgap/{who}"] = np.array(max(np.max(np.abs(g - grads64[k])) / np.max(np.abs(grads64[k]))
                                                for k, g in grads.items() if np.max(np.abs(grads64[k])) > 1e-10),
                                            np.float32)
    for name in ("G", "D"):
        out[f"{p}lossgap_{name}"] = np.array(max(abs(a[name] - b[name]) for a, b in zip(records, records64)),
                                             np.float32)
    for who, net, net64 in (("G", G, G64), ("D", D, D64)):
        exact = numpy_state(net64)
        for key, value in numpy_state(net).items():
            out[f"{p}after64/{who}/{key}"] = sample(exact[key], CAP)
            out[f"{p}gap/{who}/{key}"] = np.array(np.max(np.abs(value.astype(np.float64) - exact[key])), np.float32)
    with torch.no_grad():
        label0 = batches[0][0]
        out[p + "fake_after64"] = sample(G64(label0.double()).numpy(), 1024)  # NCHW, sampled
        out[p + "gap_fake_after"] = np.array(np.max(np.abs(nhwc(G(label0)).astype(np.float64) -
                                                           nhwc(G64(label0.double())))), np.float32)
    return records


def write_encoder(out, inst, image):
    E = Encoder(OUTPUT_NC, FEAT_NUM, NEF, N_DOWNSAMPLE_E, get_norm_layer("instance"))
    record_keys(out, "E", E)
    load_numpy(E, initial_state(*kinds_of(E), SEEDS["E"]))
    with torch.no_grad():
        out["E/raw"] = sample(E.model(image).numpy(), 1024)  # NCHW, sampled: before the instance averaging
        out["E/pooled"] = nhwc(E(image, inst))


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED + 1000)
    out = {"seeds": np.array([SEEDS[k] for k in ("global", "local", "D", "vgg", "E")]), "cap": np.array(CAP),
           "config": np.array([LABEL_NC, H, W, NGF, N_DOWNSAMPLE_GLOBAL, N_BLOCKS_GLOBAL, NGF_LOCAL, N_LOCAL_ENHANCERS,
                               N_BLOCKS_LOCAL, NDF, N_LAYERS_D, NUM_D, NEF, N_DOWNSAMPLE_E, FEAT_NUM])}
    vk = vgg_kinds()
    out["vgg_keys"], out["vgg_shapes"], out["vgg_kinds"] = (
        np.array(vk[0]), np.array([",".join(map(str, s)) for s in vk[1]]), np.array(vk[2]))
    labels, insts, images, batches = [], [], [], []
    for _ in range(STEPS):
        label, inst, image = make_batch(rng)
        labels.append(label)
        insts.append(inst)
        images.append(image)
        input_label = encode_input(torch.from_numpy(label)[None, None], torch.from_numpy(inst)[None, None])
        batches.append((input_label, torch.from_numpy(image)))
    out["label_ids"] = np.stack(labels).astype(np.uint8)[..., None]  # [STEPS, H, W, 1]
    out["inst_ids"] = np.stack(insts).astype(np.int16)[..., None]
    out["image"] = np.concatenate([nhwc(i) for i in images]).astype(np.float16)  # exact
    out["input_label"] = np.concatenate([nhwc(b[0].numpy()) for b in batches]).astype(np.uint8)  # one-hot + edges
    for kind in ("global", "local"):
        records = write_run(out, kind, batches)
        terms = {k: round(records[0][k], 5) for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")}
        print(f"{kind}: step losses G {[round(r['G'], 5) for r in records]} D {[round(r['D'], 5) for r in records]}; "
              f"terms step 1 {terms}")
    write_encoder(out, torch.from_numpy(insts[0])[None, None], torch.from_numpy(images[0]))
    path = os.path.join(HERE, "pix2pixhd_small.npz")
    np.savez_compressed(path, **out)
    gaps = {k: float(v) for k, v in out.items() if "gap" in k and "/gap/" not in k and v.ndim == 0 and
            not k.split("/")[-1].endswith(("weight", "bias"))}
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB; float32 vs float64 gaps {gaps}; "
          f"max weight gap {max(float(v) for k, v in out.items() if '/gap/' in k):.3g}")


if __name__ == "__main__":
    main()
