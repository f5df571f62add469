"""GLSL of the Gaussian splat draw (compiled through gpu.types.GPUShaderCreateInfo in
`splat_draw.py`). The rules are the renderers' (`core/render/projection.py`,
`torch_backend.py`), per instance: EWA 2D covariance J W Sigma W^T J^T + 0.3 px^2, Jacobian
at the mean clamped to 1.3x the field of view, box of extend = min(3.33, sqrt(2 ln(255 o)))
standard deviations, near-plane and off-screen culling; per fragment: alpha = min(0.999,
o exp(-1/2 d^T Sigma^-1 d)), discarded below 1/255, output premultiplied for back-to-front
'ALPHA_PREMULT' blending. Colours come evaluated per splat in the 'color' plane.

Push constants fill exactly 128 bytes, the smallest limit a backend has (Vulkan, Metal).
"""

VERTEX = """
ivec2 texel_of(int i) { return ivec2(i % TEX_WIDTH, i / TEX_WIDTH); }

void main() {
  int splat = int(texelFetch(order_tex, texel_of(gl_InstanceID), 0).r);
  vec4 center = texelFetch(center_tex, texel_of(splat), 0);
  vec4 q = texelFetch(rotation_tex, texel_of(splat), 0);
  vec3 s = texelFetch(scale_tex, texel_of(splat), 0).xyz;
  float opacity = center.w;
  bool ortho = options.x != 0;
  vec3 p = (view_model * vec4(center.xyz, 1.0)).xyz;
  gl_Position = vec4(0.0, 0.0, 2.0, 1.0);  /* outside the clip volume: culled */
  v_offset = vec2(0.0);
  v_conic = vec3(0.0);
  v_color = vec4(0.0);
  if ((!ortho && p.z <= NEAR_PLANE) || opacity < ALPHA_MIN) {
    return;
  }
  float w = q.x, x = q.y, y = q.z, z = q.w;
  mat3 rot = mat3(  /* column-major: quaternion.to_matrix, columns scaled by the deviations */
    vec3(1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + w * z), 2.0 * (x * z - w * y)) * s.x,
    vec3(2.0 * (x * y - w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z + w * x)) * s.y,
    vec3(2.0 * (x * z + w * y), 2.0 * (y * z - w * x), 1.0 - 2.0 * (x * x + y * y)) * s.z);
  mat3 m = mat3(view_model) * rot;
  float fx = intrinsics.x, fy = intrinsics.y;
  vec3 jx, jy;
  vec2 mean;
  if (ortho) {
    jx = vec3(fx, 0.0, 0.0);
    jy = vec3(0.0, fy, 0.0);
    mean = vec2(fx * p.x, fy * p.y) + intrinsics.zw;
  }
  else {
    float rz = 1.0 / p.z;
    float tx = clamp(p.x * rz, fov_limits.x, fov_limits.y);
    float ty = clamp(p.y * rz, fov_limits.z, fov_limits.w);
    jx = vec3(fx * rz, 0.0, -fx * tx * rz);
    jy = vec3(0.0, fy * rz, -fy * ty * rz);
    mean = vec2(fx * p.x * rz, fy * p.y * rz) + intrinsics.zw;
  }
  vec3 row_x = jx * m;  /* rows of J W R S */
  vec3 row_y = jy * m;
  float a = dot(row_x, row_x) + EPS2D;
  float b = dot(row_x, row_y);
  float c = dot(row_y, row_y) + EPS2D;
  float det = a * c - b * b;
  float extend = min(MAX_EXTEND, sqrt(2.0 * log(opacity / ALPHA_MIN)));
  vec2 radius = ceil(extend * sqrt(max(vec2(a, c), 0.0)));
  vec2 size = image.xy;
  if (det <= 0.0 || (radius.x <= 0.0 && radius.y <= 0.0) || any(lessThanEqual(mean + radius, vec2(0.0)))
      || any(greaterThanEqual(mean - radius, size))) {
    return;
  }
  vec2 offset = corner * radius;
  vec2 pixel = mean + offset;
  float ndc_z = ortho ? image.z * p.z + image.w : image.z + image.w / p.z;
  gl_Position = vec4(2.0 * pixel.x / size.x - 1.0, 1.0 - 2.0 * pixel.y / size.y, ndc_z, 1.0);
  v_offset = offset;
  v_conic = vec3(c, -b, a) / det;
  vec3 rgb = options.y != 0 ? vec3(p.z, 0.0, 0.0) : texelFetch(color_tex, texel_of(splat), 0).rgb;
  v_color = vec4(rgb, opacity);
}
"""

FRAGMENT = """
void main() {
  vec2 d = v_offset;
  float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
  if (power > 0.0) {
    discard;
  }
  float alpha = min(ALPHA_MAX, v_color.a * exp(power));
  if (alpha < ALPHA_MIN) {
    discard;
  }
  frag_color = vec4(v_color.rgb * alpha, alpha);
}
"""

# Photo reprojection of the live draw through the scene camera: the sums of the colour and
# feature passes (drawn offscreen at the region's size) resolved per pixel as
# `core.render.reprojection.resolve` does: source = (offset + Mbar p) / U, photo sampled there
# (bilinear, edges replicated), blended with the unseen share's lifted colour by the photo share
# (`SHARE_FRAGMENT`'s, as `smooth_share`'s),
# alpha made solid where seen, pinholes closed (grey closing over (2 HOLE_RADIUS + 1)^2 windows,
# clipped to the region as max_pool2d's padding is), and alpha-0 pinholes inside a seen surface
# given the seen neighbours' colour, as the torch resolve does. Feature plane c carries M11 and the splat's
# camera z, whose sum over alpha is the expected depth written for Blender's depth test. The
# features may come from the scene camera at another resolution (the view through it zooms and
# pans): `pixel_map` takes the view's pixels to that camera's.
RESOLVE_VERTEX = """
void main() {
  gl_Position = vec4(corner, 0.0, 1.0);
}
"""

RESOLVE_FRAGMENT = """
float solid_at(ivec2 texel) {
  float alpha = texelFetch(lifted_tex, texel, 0).a;
  float share = texelFetch(share_tex, texel, 0).r;
  return alpha + (1.0 - alpha) * share * clamp((alpha - SOLID_LO) / (SOLID_HI - SOLID_LO), 0.0, 1.0);
}

float closed_at(ivec2 texel, ivec2 size, float floor_value) {
  /* min over the window of (max over the window): stops once it cannot exceed floor_value */
  float closed = 1.0;
  for (int y = max(texel.y - HOLE_RADIUS, 0); y <= min(texel.y + HOLE_RADIUS, size.y - 1); y++) {
    for (int x = max(texel.x - HOLE_RADIUS, 0); x <= min(texel.x + HOLE_RADIUS, size.x - 1); x++) {
      float grown = 0.0;
      for (int v = max(y - HOLE_RADIUS, 0); v <= min(y + HOLE_RADIUS, size.y - 1); v++) {
        for (int u = max(x - HOLE_RADIUS, 0); u <= min(x + HOLE_RADIUS, size.x - 1); u++) {
          grown = max(grown, solid_at(ivec2(u, v)));
        }
      }
      closed = min(closed, grown);
      if (closed <= floor_value) {
        return closed;
      }
    }
  }
  return closed;
}

vec2 expected_pixel(ivec2 texel) {
  /* OpenCV pixel (y down, centres +0.5) of the camera the features were made for */
  return vec2(float(texel.x) + 0.5, sizes.z - (float(texel.y) + 0.5)) * pixel_map.xy + pixel_map.zw;
}

vec3 straight_at(ivec2 texel, out float share) {
  /* the pixel's straight colour: photo(source) by its share, the unseen splats' lifted colour for
     the rest (alpha > 0 here) */
  vec4 lifted = texelFetch(lifted_tex, texel, 0);
  float alpha = lifted.a;
  vec3 fa = texelFetch(feature_a_tex, texel, 0).rgb;  /* U, offset */
  vec3 fb = texelFetch(feature_b_tex, texel, 0).rgb;  /* M00, M01, M10 */
  float m11 = texelFetch(feature_c_tex, texel, 0).r;
  float seen = fa.x;
  vec2 p = expected_pixel(texel);
  vec2 source = p;
  if (seen > SEEN_MIN) {
    source = (fa.yz + vec2(fb.x * p.x + fb.y * p.y, fb.z * p.x + m11 * p.y)) / seen;
  }
  share = texelFetch(share_tex, texel, 0).r;
  vec3 photo = texture(photo_tex, source / sizes.xy).rgb;
  return share * photo + (1.0 - share) * lifted.rgb / max(alpha - seen, 1e-12);
}

float depth_value(float z) {
  return clamp(0.5 * (depth_ab.x + depth_ab.y / max(z, NEAR_PLANE)) + 0.5, 0.0, 1.0);
}

void main() {
  ivec2 texel = ivec2(gl_FragCoord.xy);
  ivec2 size = textureSize(lifted_tex, 0);
  float alpha = texelFetch(lifted_tex, texel, 0).a;
  if (alpha <= 0.0) {
    /* a pinhole the rasteriser left inside a seen surface: colour and depth from the seen pixels
       around it, weighted by their seen coverage, alpha from the closing (as the torch resolve).
       Nothing drawn in the window centred here: the closing is 0 (one of its windows is empty). */
    float near = 0.0;
    for (int y = max(texel.y - HOLE_RADIUS, 0); y <= min(texel.y + HOLE_RADIUS, size.y - 1); y++) {
      for (int x = max(texel.x - HOLE_RADIUS, 0); x <= min(texel.x + HOLE_RADIUS, size.x - 1); x++) {
        near = max(near, texelFetch(lifted_tex, ivec2(x, y), 0).a);
      }
    }
    if (near <= 0.0) {
      discard;
    }
    float closed = closed_at(texel, size, 1e-4);
    if (closed <= 1e-4) {
      discard;
    }
    vec3 colour_sum = vec3(0.0);
    float weight_sum = 0.0;
    float depth_sum = 0.0;
    for (int y = texel.y - HOLE_RADIUS; y <= texel.y + HOLE_RADIUS; y++) {
      for (int x = texel.x - HOLE_RADIUS; x <= texel.x + HOLE_RADIUS; x++) {
        if (x < 0 || y < 0 || x >= size.x || y >= size.y) {
          continue;
        }
        float around = texelFetch(lifted_tex, ivec2(x, y), 0).a;
        if (around <= 0.0) {
          continue;
        }
        float share;
        vec3 colour = straight_at(ivec2(x, y), share);
        float weight = solid_at(ivec2(x, y)) * share;  /* its seen coverage */
        colour_sum += weight * colour;
        weight_sum += weight;
        depth_sum += weight * texelFetch(feature_c_tex, ivec2(x, y), 0).g / around;
      }
    }
    if (weight_sum <= 1e-6) {
      discard;
    }
    frag_color = vec4(colour_sum / weight_sum * closed, closed);
    gl_FragDepth = depth_value(depth_sum / weight_sum);
    return;
  }
  float share;
  vec3 straight = straight_at(texel, share);
  float solid = solid_at(texel);
  if (share > 0.0 && solid < 1.0) {
    solid = max(solid, closed_at(texel, size, solid / share) * share);
  }
  frag_color = vec4(straight * solid, solid);
  gl_FragDepth = depth_value(texelFetch(feature_c_tex, texel, 0).g / alpha);  /* expected camera depth */
}
"""


# The photo share of every pixel, made once per view and pose before the resolve reads it, as
# `core.render.reprojection.smooth_share` does: step 0 the raw share U / alpha / PIXEL_SEEN_FULL eroded
# over the covered pixels of each (2 SHARE_OPEN_RADIUS + 1)^2 window (clipped to the region), step 1
# those dilated (the opening), step 2 their alpha-weighted mean. Uncovered pixels are 0.
SHARE_FRAGMENT = """
void main() {
  ivec2 texel = ivec2(gl_FragCoord.xy);
  ivec2 size = textureSize(lifted_tex, 0);
  if (texelFetch(lifted_tex, texel, 0).a <= 0.0) {
    frag_color = vec4(0.0);
    return;
  }
  float value = (share_step == 0) ? 1.0 : 0.0;
  float weight_sum = 0.0;
  for (int y = max(texel.y - SHARE_OPEN_RADIUS, 0); y <= min(texel.y + SHARE_OPEN_RADIUS, size.y - 1); y++) {
    for (int x = max(texel.x - SHARE_OPEN_RADIUS, 0); x <= min(texel.x + SHARE_OPEN_RADIUS, size.x - 1); x++) {
      float alpha = texelFetch(lifted_tex, ivec2(x, y), 0).a;
      if (alpha <= 0.0) {
        continue;
      }
      if (share_step == 0) {
        float seen = texelFetch(feature_a_tex, ivec2(x, y), 0).r;
        value = min(value, clamp(seen / max(alpha, 1e-12) / PIXEL_SEEN_FULL, 0.0, 1.0));
      } else if (share_step == 1) {
        value = max(value, texelFetch(share_tex, ivec2(x, y), 0).r);
      } else {
        value += alpha * texelFetch(share_tex, ivec2(x, y), 0).r;
        weight_sum += alpha;
      }
    }
  }
  if (share_step == 2) {
    value = clamp(value / max(weight_sum, 1e-12), 0.0, 1.0);
  }
  frag_color = vec4(value, 0.0, 0.0, 1.0);
}
"""


def resolve_defines() -> dict[str, str]:
    """Constants of the torch resolve (`core.render.reprojection`), as GLSL literals."""
    from ..core.render.projection import NEAR_PLANE
    from ..core.render.reprojection import _SEEN_MIN, HOLE_RADIUS, PIXEL_SEEN_FULL, SHARE_OPEN_RADIUS, SOLID_FROM

    return {"SEEN_MIN": repr(float(_SEEN_MIN)), "PIXEL_SEEN_FULL": repr(float(PIXEL_SEEN_FULL)),
            "SHARE_OPEN_RADIUS": str(int(SHARE_OPEN_RADIUS)),
            "SOLID_LO": repr(float(SOLID_FROM[0])), "SOLID_HI": repr(float(SOLID_FROM[1])),
            "HOLE_RADIUS": str(int(HOLE_RADIUS)), "NEAR_PLANE": repr(float(NEAR_PLANE))}


def defines() -> dict[str, str]:
    """Constants shared with the torch renderer, as GLSL literals."""
    from ..core.render.projection import ALPHA_MIN, EPS2D, MAX_EXTEND, NEAR_PLANE
    from ..core.splat_pack import TEX_WIDTH
    from ..core.render.torch_backend import ALPHA_MAX

    return {"TEX_WIDTH": str(TEX_WIDTH), "NEAR_PLANE": repr(float(NEAR_PLANE)), "ALPHA_MIN": repr(float(ALPHA_MIN)),
            "ALPHA_MAX": repr(float(ALPHA_MAX)), "EPS2D": repr(float(EPS2D)), "MAX_EXTEND": repr(float(MAX_EXTEND))}
