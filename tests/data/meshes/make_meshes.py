"""Rebuild the test meshes in this folder (run from anywhere; needs trimesh and pillow).

textured_quad.glb / textured_quad.obj (+ .mtl, .png): a 1 x 1 square in its format's own frame
(glTF / OBJ: Y up, facing +Z), UVs over the whole 16 x 16 texture: four flat quadrants (red top
left, green top right, blue bottom left, yellow bottom right) with a white 4 x 4 block in the
middle of the top left quadrant, so a flip of either texture axis is visible.
"""
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

HERE = Path(__file__).parent


def texture() -> np.ndarray:  # uint8 [16, 16, 3], row 0 at the top
    tex = np.zeros((16, 16, 3), np.uint8)
    tex[:8, :8], tex[:8, 8:] = (220, 30, 30), (30, 200, 40)
    tex[8:, :8], tex[8:, 8:] = (40, 50, 210), (230, 210, 30)
    tex[2:6, 2:6] = 255
    return tex


def quad() -> trimesh.Trimesh:
    v = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture()),
                                                   baseColorFactor=[255, 255, 255, 255])
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
                           process=False)


if __name__ == "__main__":
    quad().export(HERE / "textured_quad.glb")
    obj = quad()
    obj.visual.material = obj.visual.material.to_simple()
    obj.export(HERE / "textured_quad.obj", mtl_name="textured_quad.mtl")
