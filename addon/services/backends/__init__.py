"""Model backends behind the services: Segmenter, Lifter and Inpainter implementations.

Each module imports its heavy library (cv2, torch, segment_anything, diffusers, trellis)
inside functions, so listing or configuring backends never pays for loading them."""
